"""A small web app, as in the user's guide."""
import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return {"status": "ok", "env": os.environ.get("APP_ENV", "development")}


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8000)
