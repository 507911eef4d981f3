FROM busybox
RUN x
