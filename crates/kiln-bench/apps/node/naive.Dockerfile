FROM kiln-bench/bookworm:1
RUN apt-get update
RUN apt-get install -y nodejs npm
WORKDIR /app
COPY . .
RUN npm install
EXPOSE 3000
CMD ["node", "server.js"]
