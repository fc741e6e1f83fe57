// Shows whether the API answers; text only, never HTML from the server.
fetch('/healthz').then(r => r.text()).then(t => {
  document.getElementById('health').textContent = 'Server health: ' + t.trim();
}).catch(() => {
  document.getElementById('health').textContent = 'Server health: unreachable';
});
