FROM busybox
BOGUS x y
RUN x
