const express = require("express");

const app = express();
app.get("/", (_req, res) => res.send("hello from express\n"));
app.get("/health", (_req, res) => res.send("ok\n"));
app.listen(3000, "0.0.0.0");
