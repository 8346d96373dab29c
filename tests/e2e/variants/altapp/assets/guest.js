// Who answered, and the newest posts read from that server's own database.
async function show() {
  const who = await fetch("api/status").then((r) => r.json());
  document.getElementById("who").textContent = `answered by ${who.host} (pid ${who.pid})`;
  const book = await fetch("api/guestbook").then((r) => r.json());
  document.getElementById("posts").replaceChildren(...book.entries.map((e) => {
    const li = document.createElement("li");
    li.textContent = `${e.name}: ${e.message}`;
    return li;
  }));
}

document.getElementById("post").addEventListener("submit", async (event) => {
  event.preventDefault();
  await fetch("api/guestbook", { method: "POST", body: new URLSearchParams(new FormData(event.target)) });
  event.target.reset();
  setTimeout(show, 500);
});

show();
