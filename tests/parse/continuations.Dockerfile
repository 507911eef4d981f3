FROM busybox
RUN a \
    b \   
	c
RUN only \

RUN x
