FROM busybox
RUN a \
  b
ENV A=1
