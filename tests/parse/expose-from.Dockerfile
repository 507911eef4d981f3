FROM busybox AS a
EXPOSE 80  443/tcp	8080
FROM a
FROM busybox:1 AS Two
