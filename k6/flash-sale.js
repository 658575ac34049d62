// A flash sale: many more customers than seats hold, pay and confirm.
//
//   STRATEGY=pessimistic k6/run.sh flash-sale     (or: k6 run k6/flash-sale.js)
//
// CUSTOMERS virtual users (default 100) start together on a fresh event of
// SEATS seats (default 20). Each picks a seat the API lists as free, holds it
// for TTL_MS (default 2000), and then either walks away (ABANDON of them,
// default 0.3: half release, half let it expire) or pays for up to
// PAY_MAX_MS (default 2500, so some land late: 410) and confirms with an
// Idempotency-Key. A customer stops once they own a seat.
//
// Fails when the lesson fails: seats left unsold, a seat booked twice, a
// customer answered anything but 200, 201, 409 or 410, or (under a strategy
// that holds) two live holds granted on one seat.
import http from 'k6/http';
import { sleep } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { ADMIN, BASE_URL, deleteEvent, setStrategy } from './lib.js';

const STRATEGY = __ENV.STRATEGY || 'pessimistic';
const CUSTOMERS = parseInt(__ENV.CUSTOMERS || '100', 10);
const SEATS = parseInt(__ENV.SEATS || '20', 10);
const TTL_MS = parseInt(__ENV.TTL_MS || '2000', 10);
const ABANDON = parseFloat(__ENV.ABANDON || '0.3');
const PAY_MAX_MS = parseInt(__ENV.PAY_MAX_MS || '2500', 10);
const SAFE = !['none', 'mutex'].includes(STRATEGY);
const JSON_HEADERS = { 'Content-Type': 'application/json', ...ADMIN.headers };

// A late payment (410) is an answer too.
http.setResponseCallback(http.expectedStatuses(200, 201, 409, 410));

const holdMs = new Trend('hold_ms', true);
const confirmMs = new Trend('confirm_ms', true);
const holdsGranted = new Counter('holds_granted');
const doubleHolds = new Counter('double_holds');
const lateConfirms = new Counter('late_confirms');
const lostConfirms = new Counter('lost_confirms');
const bookings = new Counter('bookings_confirmed');
const unsold = new Counter('unsold_seats');
const doubleBooked = new Counter('double_booked_seats');

export const options = {
  scenarios: {
    sale: { executor: 'per-vu-iterations', vus: CUSTOMERS, iterations: 1, maxDuration: '90s' },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    unsold_seats: ['count==0'],
    double_booked_seats: ['count==0'],
    bookings_confirmed: [`count==${SEATS}`],
    double_holds: SAFE ? ['count==0'] : ['count>=0'],
  },
};

export function setup() {
  setStrategy(STRATEGY);
  const body = JSON.stringify({ name: `k6 flash sale ${STRATEGY}`, rows: Math.ceil(SEATS / 10), seats_per_row: Math.min(SEATS, 10) });
  const created = http.post(`${BASE_URL}/admin/events`, body, { headers: JSON_HEADERS });
  if (created.status !== 201) throw new Error(`creating the sale's event answered ${created.status}: ${created.body}`);
  for (const counter of [doubleHolds, unsold, doubleBooked, bookings]) counter.add(0);
  console.log(`flash sale under ${STRATEGY}: ${CUSTOMERS} customers, ${SEATS} seats, holds of ${TTL_MS} ms at ${BASE_URL}`);
  return { eventId: created.json('event.id') };
}

// The seats on sale now, or null once every seat is booked.
function freeSeats(eventId) {
  const seats = http.get(`${BASE_URL}/events/${eventId}/seats?available_only=true`, { tags: { name: 'seats' } }).json('seats') || [];
  if (seats.length > 0) return seats.map((seat) => seat.seat_number);
  const event = http.get(`${BASE_URL}/events/${eventId}`, { tags: { name: 'event' } }).json('seats');
  return event.booked === event.total ? null : [];
}

export default function (data) {
  const customer = `k6-fan-${__VU}`;
  const walksAway = Math.random() < ABANDON;
  for (let tries = 0; tries < 200; tries += 1) {
    const free = freeSeats(data.eventId);
    if (free === null) return;
    if (free.length === 0) { sleep(0.1); continue; }
    const seat = free[Math.floor(Math.random() * free.length)];
    const body = JSON.stringify({ event_id: data.eventId, seat_number: seat, customer_id: customer, ttl_ms: TTL_MS });
    const held = http.post(`${BASE_URL}/holds`, body, { headers: { 'Content-Type': 'application/json' }, tags: { name: 'hold' } });
    holdMs.add(held.timings.duration);
    if (held.status !== 201) { sleep(0.02 + Math.random() * 0.03); continue; }
    holdsGranted.add(1);
    if (held.json('hold_count') > 1) doubleHolds.add(1);
    const holdId = held.json('hold_id');
    if (walksAway) {
      if (Math.random() < 0.5) http.del(`${BASE_URL}/holds/${holdId}`, null, { tags: { name: 'release' } });
      return;
    }
    sleep((100 + Math.random() * (PAY_MAX_MS - 100)) / 1000);
    const paid = http.post(`${BASE_URL}/holds/${holdId}/confirm`, null, {
      headers: { 'Idempotency-Key': `${customer}-${holdId}` },
      tags: { name: 'confirm' },
    });
    confirmMs.add(paid.timings.duration);
    if (paid.status === 200) { bookings.add(1); return; }
    if (paid.status === 410) lateConfirms.add(1);
    else lostConfirms.add(1);
  }
}

export function teardown(data) {
  sleep(0.2);
  const event = http.get(`${BASE_URL}/events/${data.eventId}`).json();
  const perSeat = {};
  for (const holder of event.holders) perSeat[holder.seat_number] = (perSeat[holder.seat_number] || 0) + 1;
  const twice = Object.values(perSeat).filter((holders) => holders > 1).length;
  unsold.add(event.seats.total - event.seats.booked);
  doubleBooked.add(twice);
  console.log(`sold ${event.seats.booked}/${event.seats.total} seats; ${twice} booked twice`);
  deleteEvent(data.eventId);
}
