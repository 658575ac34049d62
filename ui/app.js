// The seat map. Plain JavaScript, no build step, served from the binary.
//
// It loads an event from GET /events/{id}, then follows its changes over
// Server-Sent Events from GET /events/{id}/stream: a booking written by any
// replica arrives through Redis pub/sub. After every reconnect it reloads
// the event, so it never shows stale seats. The replicas' strategies and
// their own last-minute counts come from GET /admin/cluster, once a second.
//
// A held seat shows its hold's seconds left. The database decides when a
// hold ends; the countdown only shows it (this page and Postgres read the
// same clock when they run on one machine, and the sweep's `freed` event
// corrects the page if they do not).
'use strict';

const FULL_GRID_LIMIT = 2000; // larger events are summarised per row
const PALETTE = ['#1565c0', '#ef6c00', '#2e7d32', '#6a1b9a', '#00838f', '#ad1457', '#5d4037', '#455a64'];

const state = {
  eventId: Number(new URLSearchParams(location.search).get('event')) || 1,
  event: null,
  seats: new Map(), // seat_number -> { seat, holders: [], hold: null | { hold_id, customer_id, expires, instance } }
  rows: [], // [{ section, row, seats: [seat_number] }]
  expandedRows: new Set(),
  selected: null,
  colors: new Map(),
  token: sessionStorage.getItem('adminToken') || '',
  source: null,
  needsResync: false,
  myHold: null, // the hold this page took: { id, seat }
};

const $ = (id) => document.getElementById(id);

function colorOf(instance) {
  if (!state.colors.has(instance)) {
    state.colors.set(instance, PALETTE[state.colors.size % PALETTE.length]);
    renderReplicaLegend();
  }
  return state.colors.get(instance);
}

// --- talking to the API -----------------------------------------------------

async function api(method, path, body) {
  const headers = { 'Content-Type': 'application/json' };
  if (path.startsWith('/admin/') && state.token) headers.Authorization = `Bearer ${state.token}`;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  if (response.status === 401 && path.startsWith('/admin/')) askForToken(data && data.error);
  return { status: response.status, data, instance: response.headers.get('X-Instance-Id') };
}

function askForToken(message) {
  $('token-form').hidden = false;
  showAdmin(`${message || 'The replicas want an admin token.'} Enter it below; it is kept for this browser session.`, true);
}

function showAdmin(text, error) {
  const line = $('admin-message');
  line.textContent = text;
  line.classList.toggle('error', Boolean(error));
}

// --- the event and its seats ------------------------------------------------

async function loadEvent() {
  const { status, data, instance } = await api('GET', `/events/${state.eventId}`);
  if (status !== 200) {
    $('seat-map').textContent = (data && data.error) || `GET /events/${state.eventId} answered ${status}`;
    return false;
  }
  $('served-by').textContent = instance || '?';
  state.event = data.event;
  state.seats = new Map();
  const rows = new Map();
  for (const seat of data.seats.details) {
    const hold = seat.is_held
      ? { hold_id: seat.hold_id, customer_id: seat.held_by, expires: Date.parse(seat.held_until), instance: null }
      : null;
    state.seats.set(seat.seat_number, { seat, holders: [], hold });
    const key = `${seat.section}\u0000${seat.row_name}`;
    if (!rows.has(key)) rows.set(key, { section: seat.section, row: seat.row_name, seats: [] });
    rows.get(key).seats.push(seat.seat_number);
  }
  state.rows = [...rows.values()].sort((a, b) => a.row.length - b.row.length || a.row.localeCompare(b.row));
  for (const holder of data.holders) addHolder(holder);
  $('event-name').textContent = `${data.event.id}: ${data.event.name} (${data.event.total_seats} seats)`;
  renderSeats();
  renderSelected();
  return true;
}

// Adds a booking to its seat; the same booking twice (a replay after a resync) counts once.
function addHolder(holder) {
  const entry = state.seats.get(holder.seat_number);
  if (!entry || entry.holders.some((h) => h.booking_id === holder.booking_id)) return null;
  entry.holders.push(holder);
  colorOf(holder.instance);
  return entry;
}

function seatState(entry) {
  if (entry.holders.length > 1) return 'double';
  if (entry.holders.length === 1 || entry.seat.is_booked) return 'booked';
  if (secondsLeft(entry) > 0) return 'held';
  return 'free';
}

// Whole seconds left on the seat's hold (0: none, or over).
function secondsLeft(entry) {
  return entry.hold ? Math.max(0, Math.ceil((entry.hold.expires - Date.now()) / 1000)) : 0;
}

function describe(entry) {
  const number = entry.seat.seat_number;
  const holders = entry.holders.map((h) => `${h.customer_id} (${h.instance})`);
  if (holders.length > 1) return `${number}: double-booked, ${holders.length} holders: ${holders.join(', ')}`;
  if (holders.length === 1) return `${number}: booked by ${holders[0]}`;
  if (seatState(entry) === 'held') return `${number}: held by ${entry.hold.customer_id}, ${secondsLeft(entry)} s left`;
  return `${number}: free`;
}

function seatButton(entry) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'seat';
  button.dataset.seat = entry.seat.seat_number;
  button.addEventListener('click', () => select(entry.seat.seat_number));
  button.addEventListener('focus', () => preview(entry.seat.seat_number));
  button.addEventListener('mouseenter', () => preview(entry.seat.seat_number));
  paintSeat(button, entry);
  return button;
}

function paintSeat(button, entry) {
  const kind = seatState(entry);
  const count = entry.holders.length;
  button.className = `seat ${kind}`;
  button.dataset.state = kind;
  button.dataset.holders = String(count);
  button.title = describe(entry);
  button.setAttribute('aria-label', describe(entry));
  button.setAttribute('aria-pressed', String(state.selected === entry.seat.seat_number));
  const first = entry.holders[0];
  button.style.borderLeftColor = first ? colorOf(first.instance) : '';
  const icon = { double: '‼', booked: '●', held: '◐', free: '○' }[kind];
  button.innerHTML = '';
  const iconSpan = document.createElement('span');
  iconSpan.className = 'icon';
  iconSpan.setAttribute('aria-hidden', 'true');
  iconSpan.textContent = icon;
  button.append(iconSpan, entry.seat.seat_number);
  if (kind === 'held') {
    const left = secondsLeft(entry);
    button.dataset.remaining = String(left);
    const countdown = document.createElement('span');
    countdown.className = 'countdown';
    countdown.setAttribute('aria-hidden', 'true');
    countdown.textContent = `${left}s`;
    button.append(countdown);
  } else {
    delete button.dataset.remaining;
  }
  if (count > 1) {
    const badge = document.createElement('span');
    badge.className = 'badge';
    badge.setAttribute('aria-hidden', 'true');
    badge.textContent = String(count);
    button.append(badge);
  }
}

function renderSeats() {
  const map = $('seat-map');
  map.innerHTML = '';
  const summarise = state.seats.size > FULL_GRID_LIMIT;
  let section = null;
  const fragment = document.createDocumentFragment();
  for (const row of state.rows) {
    if (row.section !== section) {
      section = row.section;
      const heading = document.createElement('div');
      heading.className = 'section-name';
      heading.textContent = section;
      fragment.append(heading);
    }
    if (summarise && !state.expandedRows.has(row.row)) fragment.append(rowSummary(row));
    else fragment.append(fullRow(row, summarise));
  }
  map.append(fragment);
  renderCounts();
}

function fullRow(row, collapsible) {
  const line = document.createElement('div');
  line.className = 'seat-row';
  line.dataset.row = row.row;
  const name = document.createElement(collapsible ? 'button' : 'span');
  name.className = 'row-name';
  name.textContent = row.row;
  if (collapsible) {
    name.type = 'button';
    name.title = `Collapse row ${row.row}`;
    name.addEventListener('click', () => { state.expandedRows.delete(row.row); renderSeats(); });
  }
  line.append(name);
  for (const number of row.seats) line.append(seatButton(state.seats.get(number)));
  return line;
}

// A large event shows one bar per row; a row opens into its seats.
function rowSummary(row) {
  let booked = 0, doubled = 0;
  for (const number of row.seats) {
    const kind = seatState(state.seats.get(number));
    if (kind !== 'free' && kind !== 'held') booked += 1;
    if (kind === 'double') doubled += 1;
  }
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `row-summary${doubled ? ' has-double' : ''}`;
  button.dataset.row = row.row;
  button.setAttribute('aria-label', `Row ${row.row}: ${booked} of ${row.seats.length} booked, ${doubled} double-booked. Open the row.`);
  const total = row.seats.length;
  button.innerHTML = `<span class="row-name">${row.row}</span><span class="bar" aria-hidden="true">`
    + `<span style="width:${(100 * (booked - doubled)) / total}%;background:var(--booked-ink)"></span>`
    + `<span style="width:${(100 * doubled) / total}%;background:var(--double)"></span></span>`
    + `<span>${booked}/${total}${doubled ? ` · ‼ ${doubled}` : ''}</span>`;
  button.addEventListener('click', () => { state.expandedRows.add(row.row); renderSeats(); });
  return button;
}

function renderCounts() {
  let booked = 0, doubled = 0, held = 0;
  for (const entry of state.seats.values()) {
    const kind = seatState(entry);
    if (kind === 'held') held += 1;
    else if (kind !== 'free') booked += 1;
    if (kind === 'double') doubled += 1;
  }
  $('seat-counts').textContent = `${state.seats.size} seats: ${state.seats.size - booked - held} free, ${held} held, ${booked} booked`
    + (doubled ? `, ${doubled} of them double-booked` : '')
    + (state.seats.size > FULL_GRID_LIMIT ? ' · large event: one bar per row, open a row to see its seats' : '');
}

// Repaints one seat (or its row's summary) after a change.
function repaint(number) {
  const entry = state.seats.get(number);
  const button = document.querySelector(`.seat[data-seat="${CSS.escape(number)}"]`);
  if (button) paintSeat(button, entry);
  else if (state.seats.size > FULL_GRID_LIMIT) {
    const row = state.rows.find((r) => r.row === entry.seat.row_name);
    const summary = row && document.querySelector(`.row-summary[data-row="${CSS.escape(row.row)}"]`);
    if (summary) summary.replaceWith(rowSummary(row));
  }
  renderCounts();
  if (state.selected === number) renderSelected();
}

function select(number) {
  const previous = state.selected;
  state.selected = number;
  if (previous) repaint(previous);
  repaint(number);
  $('race-button').disabled = false;
  $('race-button').textContent = `Race seat ${number}`;
  $('book-seat').value = number;
  $('hold-button').disabled = false;
  $('hold-button').textContent = `Hold seat ${number}`;
}

function preview(number) {
  renderSelected(number);
}

function renderSelected(number = state.selected) {
  const box = $('selected');
  const entry = number && state.seats.get(number);
  if (!entry) return;
  box.innerHTML = '';
  const line = document.createElement('div');
  const words = {
    free: 'free',
    held: `held by ${entry.hold && entry.hold.customer_id}, ${secondsLeft(entry)} s left`,
    booked: 'booked',
    double: `double-booked, ${entry.holders.length} holders`,
  };
  line.textContent = `${number === state.selected ? 'Selected' : 'Seat'} ${number} (row ${entry.seat.row_name}, ${entry.seat.section}): ${words[seatState(entry)]}`;
  box.append(line);
  if (entry.holders.length) {
    const list = document.createElement('ul');
    list.id = 'holder-list';
    for (const holder of entry.holders) {
      const item = document.createElement('li');
      item.innerHTML = `<span class="chip" style="background:${colorOf(holder.instance)}"></span>`;
      item.append(`${holder.customer_id} · booking ${holder.booking_id} · written by ${holder.instance}`);
      list.append(item);
    }
    box.append(list);
  }
}

// --- live updates ------------------------------------------------------------

function connect() {
  if (state.source) state.source.close();
  const source = new EventSource(`/events/${state.eventId}/stream`);
  state.source = source;
  const status = $('stream-status');
  source.addEventListener('hello', (message) => {
    const hello = JSON.parse(message.data);
    status.textContent = `live from ${hello.instance}`;
    status.className = 'pill live';
    status.dataset.instance = hello.instance;
    if (state.needsResync) { state.needsResync = false; loadEvent(); }
  });
  source.addEventListener('seat', (message) => {
    const change = JSON.parse(message.data);
    const entry = addHolder(change);
    if (entry) { entry.seat.is_booked = true; entry.hold = null; repaint(change.seat_number); }
  });
  source.addEventListener('hold', (message) => {
    const change = JSON.parse(message.data);
    const entry = state.seats.get(change.seat_number);
    if (!entry) return;
    entry.hold = { hold_id: change.hold_id, customer_id: change.customer_id, expires: Date.parse(change.expires_at), instance: change.instance };
    colorOf(change.instance);
    repaint(change.seat_number);
  });
  source.addEventListener('freed', (message) => {
    const change = JSON.parse(message.data);
    const entry = state.seats.get(change.seat_number);
    if (entry && entry.hold && entry.hold.hold_id === change.hold_id) { entry.hold = null; repaint(change.seat_number); }
  });
  source.addEventListener('reset', () => loadEvent());
  source.addEventListener('resync', () => loadEvent());
  source.addEventListener('strategy', () => refreshCluster());
  source.onerror = () => {
    // The browser reconnects on its own (its replica died, nginx reloaded);
    // whatever happened meanwhile is read again on the next hello.
    status.textContent = 'reconnecting…';
    status.className = 'pill down';
    state.needsResync = true;
  };
}

// Every held seat's countdown, four times a second; a hold that ran out is
// gone (the database frees its seat at that instant).
function tickHolds() {
  for (const [number, entry] of state.seats) {
    if (!entry.hold) continue;
    if (entry.hold.expires <= Date.now()) entry.hold = null;
    repaint(number);
  }
}

// --- the cluster -------------------------------------------------------------

async function refreshCluster() {
  const { status, data } = await api('GET', '/admin/cluster');
  if (status !== 200) return;
  const body = $('replicas');
  body.innerHTML = '';
  const most = Math.max(1, ...data.replicas.map((r) => r.last_minute.confirmed + r.last_minute.refused + r.last_minute.double_booked));
  for (const replica of data.replicas) {
    const m = replica.last_minute;
    const row = document.createElement('tr');
    row.dataset.instance = replica.instance_id;
    row.dataset.strategy = replica.strategy;
    const width = (n) => `${(100 * n) / most}%`;
    row.innerHTML = `<td><span class="chip" style="background:${colorOf(replica.instance_id)}"></span>${replica.instance_id}</td>`
      + `<td class="strategy">${replica.strategy} <small>(epoch ${replica.strategy_version})</small></td>`
      + `<td class="confirmed">${m.confirmed}</td><td class="refused">${m.refused}</td><td class="double_booked">${m.double_booked}</td>`
      + `<td><span class="bar" aria-hidden="true"><span style="width:${width(m.confirmed)};background:#2e7d32"></span>`
      + `<span style="width:${width(m.refused)};background:#9e9e9e"></span><span style="width:${width(m.double_booked)};background:var(--double)"></span></span></td>`;
    body.append(row);
  }
  if (document.activeElement !== $('strategy-select') && data.strategy) $('strategy-select').value = data.strategy.name;
}

function renderReplicaLegend() {
  const legend = $('replica-legend');
  legend.innerHTML = '';
  for (const [instance, color] of state.colors) {
    const item = document.createElement('span');
    item.innerHTML = `<span class="chip" style="background:${color}"></span>`;
    item.append(`written by ${instance}`);
    legend.append(item);
  }
}

// --- controls ----------------------------------------------------------------

$('strategy-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const strategy = $('strategy-select').value;
  showAdmin(`switching every replica to ${strategy}…`);
  const { status, data } = await api('POST', '/admin/strategy', { strategy });
  if (status === 200) showAdmin(data.message);
  else if (status !== 401) showAdmin((data && data.error) || `answered ${status}`, true);
  refreshCluster();
});

$('reset-button').addEventListener('click', async () => {
  const { status, data } = await api('POST', `/admin/reset?event_id=${state.eventId}`);
  if (status === 200) { showAdmin(data.message); $('race-results').innerHTML = ''; await loadEvent(); }
  else if (status !== 401) showAdmin((data && data.error) || `answered ${status}`, true);
});

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  state.token = $('token-input').value.trim();
  sessionStorage.setItem('adminToken', state.token);
  $('token-form').hidden = true;
  showAdmin('token saved for this session');
  refreshCluster();
});

$('event-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  state.eventId = Number($('event-input').value) || 1;
  state.selected = null;
  state.expandedRows.clear();
  history.replaceState(null, '', `?event=${state.eventId}`);
  if (await loadEvent()) connect();
});

async function book(seat, customer) {
  const { status, data, instance } = await api('POST', '/book', { event_id: state.eventId, seat_number: seat, customer_id: customer });
  return { customer, status, data: data || {}, instance: (data && data.instance) || instance || '?' };
}

$('race-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const seat = state.selected;
  if (!seat) return;
  const count = Math.min(100, Math.max(1, Number($('race-count').value) || 10));
  const run = Math.random().toString(36).slice(2, 6);
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => book(seat, `racer-${run}-${i + 1}`)));
  const body = $('race-results');
  body.innerHTML = '';
  for (const answer of answers) {
    const row = document.createElement('tr');
    const status = answer.data.status || 'error';
    for (const [text, kind] of [[answer.customer], [String(answer.status)], [status, status], [answer.data.reason || answer.data.error || ''], [answer.instance]]) {
      const cell = document.createElement('td');
      cell.textContent = text;
      if (kind) cell.className = kind;
      row.append(cell);
    }
    body.append(row);
  }
});

$('book-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const answer = await book($('book-seat').value.trim(), $('book-customer').value.trim());
  const line = $('book-result');
  line.textContent = `${answer.status}: ${answer.data.message || answer.data.error || ''} (replica ${answer.instance})`;
  line.classList.toggle('error', answer.status >= 400);
});

// --- hold, then pay ------------------------------------------------------------

function showHold(text, error) {
  const line = $('hold-result');
  line.textContent = text;
  line.classList.toggle('error', Boolean(error));
}

function holdControls() {
  $('confirm-button').disabled = !state.myHold;
  $('release-button').disabled = !state.myHold;
}

$('hold-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const seat = state.selected;
  if (!seat) return;
  const ttlMs = Math.min(900, Math.max(1, Number($('hold-ttl').value) || 30)) * 1000;
  const body = { event_id: state.eventId, seat_number: seat, customer_id: $('hold-customer').value.trim(), ttl_ms: ttlMs };
  const { status, data, instance } = await api('POST', '/holds', body);
  const said = (data && (data.message || data.error)) || '';
  if (status === 201 || status === 200) {
    state.myHold = { id: data.hold_id, seat };
    const entry = state.seats.get(seat);
    if (entry) {
      entry.hold = { hold_id: data.hold_id, customer_id: data.customer_id, expires: Date.parse(data.expires_at), instance: data.instance };
      repaint(seat);
    }
    showHold(`${status}: ${said} (hold ${data.hold_id}, replica ${instance || '?'})`);
  } else {
    showHold(`${status}: ${said}`, true);
  }
  holdControls();
});

$('confirm-button').addEventListener('click', async () => {
  const hold = state.myHold;
  if (!hold) return;
  const response = await fetch(`/holds/${hold.id}/confirm`, { method: 'POST', headers: { 'Idempotency-Key': `seat-map-${hold.id}` } });
  let data = {};
  try { data = await response.json(); } catch (_) { /* not JSON */ }
  showHold(`${response.status}: ${data.message || data.error || ''}`, response.status !== 200);
  state.myHold = null;
  holdControls();
});

$('release-button').addEventListener('click', async () => {
  const hold = state.myHold;
  if (!hold) return;
  const { status, data } = await api('DELETE', `/holds/${hold.id}`);
  showHold(`${status}: hold ${hold.id} ${(data && (data.message || data.status || data.error)) || ''}`, status !== 200);
  state.myHold = null;
  holdControls();
});

// --- start -------------------------------------------------------------------

$('event-input').value = String(state.eventId);
loadEvent().then((loaded) => { if (loaded) connect(); });
refreshCluster();
setInterval(refreshCluster, 1000);
setInterval(tickHolds, 250);
