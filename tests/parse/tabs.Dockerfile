FROM	busybox
RUN	echo	a
ENV	A	B
