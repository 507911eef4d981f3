FROM busybox
CMD ["a", "b c", "\u00e9\n"]
CMD ["a"] trailing
CMD ['single']
CMD [ ]
ENTRYPOINT ["x"
RUN ["sh", "-c", "echo \"hi\""]
SHELL ["/bin/bash", "-c"]
VOLUME ["/a", "/b"]
VOLUME /c /d
