   FROM busybox
	 RUN x
  # comment
