FROM busybox
RUN a \
# one
   # two
  b \


  c
# after
RUN d # not a comment
