// Test case grace (whole design): the student's own copy of the guestbook application: its script.
// Ask the application server who answered, and show the guestbook read from this host's database.
async function refresh() {
  const status = await fetch("/api/status").then((r) => r.json());
  document.getElementById("status-body").textContent = JSON.stringify(status, null, 2);
  const book = await fetch("/api/guestbook").then((r) => r.json());
  document.getElementById("read-from").textContent = `read from the database on ${book.read_from}`;
  const list = document.getElementById("entries");
  list.replaceChildren(...book.entries.map((e) => {
    const item = document.createElement("li");
    item.textContent = `${e.name}: ${e.message} (via ${e.written_via})`;
    return item;
  }));
}

document.getElementById("sign").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  await fetch("/api/guestbook", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(Object.fromEntries(form)),
  });
  event.target.reset();
  setTimeout(refresh, 300);
});

refresh();
