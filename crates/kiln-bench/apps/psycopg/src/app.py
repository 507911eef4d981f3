import psycopg2
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return f"hello from psycopg2 {psycopg2.__version__}, libpq {psycopg2.extensions.libpq_version()}\n"


@app.get("/health")
def health():
    psycopg2.extensions.libpq_version()
    return "ok\n"
