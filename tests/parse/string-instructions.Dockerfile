FROM busybox
WORKDIR /a b
USER  app:app 
STOPSIGNAL SIGINT
MAINTAINER me <me@example.com>
