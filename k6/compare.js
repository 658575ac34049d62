// The strategy comparison in k6: every strategy in turn under the same load.
//
//   k6/run.sh compare        (PHASE_SECONDS=4, VUS=32, CONTENDERS=4, REPLICAS=3)
//
// For each strategy a one-shot scenario switches and resets, then VUS
// customers book for PHASE_SECONDS, CONTENDERS of them per seat. Every metric
// is tagged with the strategy, so the summary shows each strategy's latency,
// answers and double bookings; thresholds fail on a double booking under a
// safe strategy and on none under `none` (or `mutex` across replicas).
import exec from 'k6/execution';
import { book, createEvent, deleteEvent, expectsDoubleBookings, replicasExpected, resetEvent, seatName, setStrategy, STRATEGIES } from './lib.js';

const SELECTED = (__ENV.STRATEGIES || STRATEGIES.join(',')).split(',');
const PHASE = parseFloat(__ENV.PHASE_SECONDS || '4');
const VUS = parseInt(__ENV.VUS || '32', 10);
const CONTENDERS = parseInt(__ENV.CONTENDERS || '4', 10);

const scenarios = {};
const thresholds = { http_req_failed: ['rate<0.01'] };
SELECTED.forEach((strategy, i) => {
  const start = i * (PHASE + 1);
  scenarios[`switch_${strategy}`] = {
    executor: 'shared-iterations', vus: 1, iterations: 1, startTime: `${start}s`,
    exec: 'switchStrategy', env: { STRATEGY: strategy }, tags: { strategy, phase: 'switch' },
  };
  scenarios[`book_${strategy}`] = {
    executor: 'constant-vus', vus: VUS, duration: `${PHASE}s`, startTime: `${start + 1}s`, gracefulStop: '5s',
    exec: 'bookSeats', tags: { strategy, phase: 'book' },
  };
  const doubles = expectsDoubleBookings(strategy, replicasExpected());
  thresholds[`double_booked_answers{strategy:${strategy}}`] = [doubles ? 'count>0' : 'count==0'];
  thresholds[`http_req_duration{strategy:${strategy},phase:book}`] = ['p(99)<10000'];
  thresholds[`confirmed_answers{strategy:${strategy}}`] = ['count>0'];
});

export const options = { scenarios, thresholds };

export function setup() {
  return { eventId: createEvent('k6 comparison', 20000) };
}

export function switchStrategy(data) {
  setStrategy(__ENV.STRATEGY);
  resetEvent(data.eventId);
}

export function bookSeats(data) {
  const attempt = exec.scenario.iterationInTest;
  book(data.eventId, seatName(Math.floor(attempt / CONTENDERS)), `k6-${exec.vu.idInTest}-${attempt}`);
}

export function teardown(data) {
  deleteEvent(data.eventId);
}
