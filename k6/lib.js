// Shared by the k6 scripts: the API calls and what each strategy should do.
import http from 'k6/http';
import { Counter } from 'k6/metrics';

export const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8000').replace(/\/$/, '');
export const STRATEGIES = ['none', 'mutex', 'pessimistic', 'optimistic', 'distributed', 'redlock', 'fenced', 'etcd'];
// With ADMIN_TOKEN set (as on the replicas), admin calls carry it.
const ADMIN_AUTH = __ENV.ADMIN_TOKEN ? { Authorization: `Bearer ${__ENV.ADMIN_TOKEN}` } : {};
export const ADMIN = { headers: ADMIN_AUTH };
const JSON_HEADERS = { headers: { 'Content-Type': 'application/json', ...ADMIN_AUTH } };

// A 409 is an answer, not a failure: the seat was taken or the lock was busy.
http.setResponseCallback(http.expectedStatuses(200, 201, 409));

export const confirmedAnswers = new Counter('confirmed_answers');
export const doubleBookedAnswers = new Counter('double_booked_answers');
export const refusedAnswers = new Counter('refused_answers');

// Does `strategy` double-book with `replicas` replicas behind the load balancer?
// EXPECT=double|single overrides (e.g. to check that a threshold can fail).
export function expectsDoubleBookings(strategy, replicas) {
  if (__ENV.EXPECT) return __ENV.EXPECT === 'double';
  return strategy === 'none' || (strategy === 'mutex' && replicas > 1);
}

export function replicasExpected() {
  return parseInt(__ENV.REPLICAS || '3', 10);
}

function must(response, what) {
  if (response.status >= 300) {
    throw new Error(`${what} answered ${response.status}: ${response.body}`);
  }
  return response.json();
}

export function setStrategy(strategy) {
  return must(http.post(`${BASE_URL}/admin/strategy`, JSON.stringify({ strategy }), JSON_HEADERS), `setting ${strategy}`);
}

export function resetEvent(eventId) {
  return must(http.post(`${BASE_URL}/admin/reset?event_id=${eventId}`, null, ADMIN), `resetting event ${eventId}`);
}

// An event with at least `seats` seats (at most 200,000), 1000 to a row
// (rows A..Z, AA, AB, ...).
export function createEvent(name, seats) {
  const rows = Math.min(200, Math.max(1, Math.ceil(seats / 1000)));
  const body = JSON.stringify({ name, rows, seats_per_row: 1000 });
  return must(http.post(`${BASE_URL}/admin/events`, body, JSON_HEADERS), 'creating an event').event.id;
}

export function deleteEvent(eventId) {
  http.del(`${BASE_URL}/admin/events/${eventId}`, null, ADMIN);
}

// The name of the `index`-th seat of an event made by createEvent.
export function seatName(index) {
  const row = Math.floor(index / 1000) % 200;
  const seat = (index % 1000) + 1;
  const letter = (n) => String.fromCharCode(65 + n);
  const rowName = row < 26 ? letter(row) : letter(Math.floor(row / 26) - 1) + letter(row % 26);
  return `${rowName}${seat}`;
}

// A fresh Idempotency-Key for every booking: a request that nginx has to
// send again (its replica died) books once.
function idempotencyKey(customer) {
  return `${customer}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// Books a seat and counts the answer by what it says.
export function book(eventId, seat, customer) {
  const response = http.post(
    `${BASE_URL}/book`,
    JSON.stringify({ event_id: eventId, seat_number: seat, customer_id: customer }),
    { headers: { 'Content-Type': 'application/json', 'Idempotency-Key': idempotencyKey(customer) } },
  );
  const status = response.status === 200 || response.status === 409 ? response.json('status') : 'error';
  if (status === 'confirmed') confirmedAnswers.add(1);
  else if (status === 'double_booked') doubleBookedAnswers.add(1);
  else if (status === 'failed') refusedAnswers.add(1);
  return response;
}

export function doubleBookings(eventId) {
  return must(http.get(`${BASE_URL}/admin/double-bookings?event_id=${eventId}`, ADMIN), 'double bookings');
}
