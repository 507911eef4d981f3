"""Serves the API."""
import uvicorn

uvicorn.run("api.app:app", host="0.0.0.0", port=8000)
