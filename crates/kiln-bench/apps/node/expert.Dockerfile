FROM kiln-bench/bookworm:1 AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

FROM kiln-bench/bookworm:1
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group app
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json server.js ./
USER 10001:10001
EXPOSE 3000
CMD ["node", "server.js"]
