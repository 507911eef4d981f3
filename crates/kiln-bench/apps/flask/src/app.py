from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "hello from flask\n"


@app.get("/health")
def health():
    return "ok\n"
