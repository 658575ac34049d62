// Throughput at a constant arrival rate, every request for a different seat.
//
//   RATE=300 DURATION=20s STRATEGY=pessimistic k6/run.sh throughput
//
// setup() creates an event with enough seats for the whole run, so nothing
// contends: this measures what the cluster sustains, not who wins a seat.
// Thresholds fail on errors, on any double booking, and when k6 could not
// keep the rate (dropped iterations above 5 %).
import exec from 'k6/execution';
import { book, createEvent, deleteEvent, seatName, setStrategy } from './lib.js';

const RATE = parseInt(__ENV.RATE || '200', 10);
const DURATION = __ENV.DURATION || '10s';
const SECONDS = parseFloat(DURATION);
const STRATEGY = __ENV.STRATEGY || 'pessimistic';

export const options = {
  scenarios: {
    throughput: {
      executor: 'constant-arrival-rate', rate: RATE, timeUnit: '1s', duration: DURATION,
      preAllocatedVUs: Math.max(10, Math.ceil(RATE / 5)), maxVUs: Math.max(50, RATE * 2),
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    double_booked_answers: ['count==0'],
    refused_answers: ['count==0'],
    dropped_iterations: [`count<${Math.ceil(RATE * SECONDS * 0.05) + 1}`],
  },
};

export function setup() {
  setStrategy(STRATEGY);
  return { eventId: createEvent(`k6 throughput ${STRATEGY}`, Math.ceil(RATE * SECONDS * 1.2) + 100) };
}

export default function (data) {
  book(data.eventId, seatName(exec.scenario.iterationInTest), `k6-throughput-${exec.scenario.iterationInTest}`);
}

export function teardown(data) {
  deleteEvent(data.eventId);
}
