FROM busybox
RUN a \