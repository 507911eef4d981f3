# escape=`
FROM busybox
ENV A=C:\x B=a`$b C="q`"r" D=e` f
RUN echo `
  x
COPY ["a\\b", "c"]
ARG E=`'x
