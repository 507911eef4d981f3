FROM kiln-bench/bookworm:1
RUN apt-get update
RUN apt-get install -y python3 python3-venv python3-pip python3-dev gcc libpq-dev
WORKDIR /app
COPY . .
RUN python3 -m venv /opt/venv
RUN /opt/venv/bin/pip install -r requirements.txt
EXPOSE 8000
CMD ["/opt/venv/bin/gunicorn", "-b", "0.0.0.0:8000", "app:app"]
