from app import app


def test_index():
    response = app.test_client().get("/")
    assert response.json["status"] == "ok"
