ARG A
ARG B=1 C="2 3"
FROM busybox
ARG D='4 5' E\ F=6
ARG G=
