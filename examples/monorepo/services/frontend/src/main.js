document.getElementById("app").textContent = "Welcome to the shop";
