// Peerway node dashboard. Live state arrives as server-sent events from /dashboard/events; every change goes through
// the Transmission RPC (rpc-spec.md), with its X-Transmission-Session-Id token (the 409 handshake, §2.3.1).
'use strict';

const rpcPath = '/transmission/rpc';
let sessionId = '';

async function rpc(method, args) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const res = await fetch(rpcPath, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Transmission-Session-Id': sessionId },
      body: JSON.stringify({ method, arguments: args || {} }),
    });
    if (res.status === 409) { sessionId = res.headers.get('X-Transmission-Session-Id') || ''; continue; }
    if (!res.ok) throw new Error(`${method}: HTTP ${res.status}`);
    const answer = await res.json();
    if (answer.result !== 'success') throw new Error(`${method}: ${answer.result}`);
    return answer.arguments;
  }
  throw new Error(`${method}: no session id`);
}

function say(text, error) {
  const m = document.getElementById('message');
  m.textContent = text;
  m.className = error ? 'error' : '';
}

async function act(label, method, args) {
  try {
    const result = await rpc(method, args);
    say(label);
    return result;
  } catch (e) {
    say(e.message, true);
    return null;
  }
}

function bytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props || {});
  for (const c of children) e.append(c);
  return e;
}

function button(text, cls, onClick) {
  const b = el('button', { type: 'button', className: cls, textContent: text });
  b.addEventListener('click', onClick);
  return b;
}

// One "stream" link per file: /stream/<info-hash>/<N>/<name> serves it with HTTP ranges while it downloads.
function streamLinks(files) {
  if (!files || files.length === 0) return '';
  return el('ul', { className: 'files' }, ...files.map(f => el('li', {},
    el('span', { textContent: `${f.path} (${bytes(f.length)}) ` }),
    el('a', { className: 'stream', href: f.stream, target: '_blank', rel: 'noopener', textContent: 'stream' }))));
}

// Names come from peers: always text nodes, never HTML.
function renderTorrents(torrents) {
  const body = document.querySelector('#torrents tbody');
  const rows = torrents.map(t => {
    const pct = Math.floor(t.done * 1000) / 10;
    const bar = el('div', { className: 'bar' + (t.done >= 1 ? ' done' : '') },
      el('span', { style: `width:${pct}%` }), el('em', { textContent: `${pct.toFixed(1)} %` }));
    const paused = t.state === 'paused' || t.state === 'failed';
    const actions = el('td', { className: 'actions' },
      paused
        ? button('Resume', 'secondary', () => act(`resumed #${t.id}`, 'torrent-start', { ids: [t.id] }))
        : button('Pause', 'secondary', () => act(`paused #${t.id}`, 'torrent-stop', { ids: [t.id] })),
      ' ',
      button('Remove', 'danger', () => act(`removed #${t.id}`, 'torrent-remove', { ids: [t.id], 'delete-local-data': false })));
    const tr = el('tr', {},
      el('td', { textContent: String(t.id) }),
      el('td', { className: 'name', title: t.hash }, el('span', { textContent: t.name }), streamLinks(t.files)),
      el('td', {}, bar),
      el('td', { className: `state state-${t.state}`, textContent: t.error ? `${t.state}: ${t.error}` : t.state }),
      el('td', { className: 'down', textContent: `${bytes(t.rateDown)}/s` }),
      el('td', { className: 'up', textContent: `${bytes(t.rateUp)}/s` }),
      el('td', { className: 'peers', textContent: String(t.peers) }),
      el('td', { textContent: t.size ? bytes(t.size) : '?' }),
      actions);
    tr.dataset.id = String(t.id);
    tr.dataset.hash = t.hash;
    tr.dataset.state = t.state;
    tr.dataset.done = String(t.done);
    return tr;
  });
  body.replaceChildren(...rows);
  document.getElementById('no-torrents').hidden = torrents.length > 0;
  const down = torrents.reduce((s, t) => s + t.rateDown, 0);
  const up = torrents.reduce((s, t) => s + t.rateUp, 0);
  document.getElementById('totals').textContent = `${torrents.length} · ↓ ${bytes(down)}/s · ↑ ${bytes(up)}/s`;
}

function render(s) {
  renderTorrents(s.torrents);
  document.getElementById('dht-table').textContent = String(s.dht.routingTable);
  document.getElementById('dht-lookups').textContent = String(s.dht.lookups);
  document.getElementById('dht-queries').textContent = `${s.dht.queriesIn} / ${s.dht.queriesOut}`;
  document.getElementById('dht-stored').textContent = String(s.dht.storedInfoHashes);
  document.getElementById('ipfs-id').textContent = s.ipfs.peerId;
  document.getElementById('ipfs-swarm').textContent = s.ipfs.swarm;
  document.getElementById('ipfs-table').textContent = String(s.ipfs.routingTable);
  document.getElementById('ipfs-peers').replaceChildren(...s.ipfs.peers.map((p) => {
    const li = document.createElement('li');
    li.textContent = p;
    return li;
  }));
  document.getElementById('turn').textContent = s.turnAllocations === null
    ? 'Not running on this node ("turn" in the config, or --turn).'
    : `${s.turnAllocations} allocations`;
  const list = document.getElementById('content');
  list.replaceChildren(...s.content.map(c => el('li', {},
    el('code', { textContent: c.cid }), ' ',
    el('a', { href: c.gateway, textContent: 'gateway (CAR)' }),
    c.pinned ? el('small', { textContent: ' pinned' }) : '')));
  document.getElementById('no-content').hidden = s.content.length > 0;
}

function connect() {
  const live = document.getElementById('live');
  const events = new EventSource('/dashboard/events');
  events.onopen = () => { live.textContent = 'live'; live.className = 'live'; };
  events.onmessage = e => render(JSON.parse(e.data));
  // EventSource reconnects by itself; show that the view is stale meanwhile.
  events.onerror = () => { live.textContent = 'reconnecting…'; live.className = 'live off'; };
}

document.getElementById('add-magnet').addEventListener('submit', async e => {
  e.preventDefault();
  const input = document.getElementById('magnet');
  const r = await act('added', 'torrent-add', { filename: input.value.trim() });
  if (r) input.value = '';
});

document.getElementById('add-file').addEventListener('submit', async e => {
  e.preventDefault();
  const input = document.getElementById('torrent-file');
  const file = input.files[0];
  if (!file) return;
  const data = new Uint8Array(await file.arrayBuffer());
  let binary = '';
  for (let i = 0; i < data.length; i += 0x8000) binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
  const r = await act(`added ${file.name}`, 'torrent-add', { metainfo: btoa(binary) });
  if (r) input.value = '';
});

connect();
