// The seed's race: many customers at once for a few hot seats of event 1.
//
//   STRATEGY=pessimistic k6/run.sh race      (or: k6 run k6/race.js)
//
// VUS customers (default 30) start together, each books one of HOT_SEATS
// (default A1,A2,A3), so ten race for every seat. Fails when the lesson fails:
// a double booking under a safe strategy, none under `none` (or under `mutex`
// with REPLICAS > 1), or errors.
import { sleep } from 'k6';
import { BASE_URL, book, doubleBookings, expectsDoubleBookings, replicasExpected, resetEvent, setStrategy } from './lib.js';

const STRATEGY = __ENV.STRATEGY || 'none';
const HOT_SEATS = (__ENV.HOT_SEATS || 'A1,A2,A3').split(',');
const VUS = parseInt(__ENV.VUS || '30', 10);
const DOUBLES = expectsDoubleBookings(STRATEGY, replicasExpected());

export const options = {
  scenarios: {
    race: { executor: 'per-vu-iterations', vus: VUS, iterations: 1, maxDuration: '60s' },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    double_booked_answers: [DOUBLES ? 'count>0' : 'count==0'],
    confirmed_answers: ['count>0'],
  },
};

export function setup() {
  setStrategy(STRATEGY);
  resetEvent(1);
  console.log(`racing ${VUS} customers for ${HOT_SEATS.join(', ')} under ${STRATEGY} at ${BASE_URL}`);
}

export default function () {
  const vu = __VU - 1;
  book(1, HOT_SEATS[vu % HOT_SEATS.length], `k6-race-${vu}`);
}

export function teardown() {
  sleep(0.2);
  const found = doubleBookings(1);
  console.log(`server-side: ${found.count} double-booked seats ${JSON.stringify(found.double_bookings.map((d) => [d.seat_number, d.booking_count]))}`);
}
