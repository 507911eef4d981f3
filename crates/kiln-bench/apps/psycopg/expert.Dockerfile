FROM kiln-bench/bookworm:1 AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libpq-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
COPY requirements.txt ./
RUN /opt/venv/bin/pip install --no-cache-dir --no-compile -r requirements.txt

FROM kiln-bench/bookworm:1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libpq5 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --user-group app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY app.py ./
USER 10001:10001
ENV PATH=/opt/venv/bin:$PATH
EXPOSE 8000
CMD ["gunicorn", "-b", "0.0.0.0:8000", "app:app"]
