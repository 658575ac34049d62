// How the load balancer spreads requests over the replicas.
//
//   REPLICAS=3 k6/run.sh spread
//
// setup() asks /admin/cluster for the live replicas and numbers them
// replica_1, replica_2, ... (sorted by instance id); every answer's
// X-Instance-Id is counted against its number. The summary shows the counts;
// thresholds fail when one of the REPLICAS expected replicas served nothing or
// an answer came from a replica the cluster does not list.
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import { ADMIN, BASE_URL, replicasExpected } from './lib.js';

const MAX_REPLICAS = 10;
const REPLICAS = replicasExpected();
const hits = Array.from({ length: MAX_REPLICAS }, (_, i) => new Counter(`replica_${i + 1}`));
const unknown = new Counter('unknown_replica');

const thresholds = { http_req_failed: ['rate<0.01'], unknown_replica: ['count==0'] };
for (let i = 1; i <= REPLICAS; i++) thresholds[`replica_${i}`] = ['count>0'];

export const options = {
  scenarios: {
    spread: { executor: 'constant-vus', vus: parseInt(__ENV.VUS || '10', 10), duration: __ENV.DURATION || '5s' },
  },
  thresholds,
};

export function setup() {
  const cluster = http.get(`${BASE_URL}/admin/cluster`, ADMIN).json();
  const replicas = cluster.replicas.map((r) => r.instance_id).sort();
  replicas.forEach((id, i) => console.log(`replica_${i + 1} = ${id}`));
  return { replicas };
}

export default function (data) {
  const response = http.get(`${BASE_URL}/events/1/seats?available_only=true`);
  const slot = data.replicas.indexOf(response.headers['X-Instance-Id']);
  if (slot >= 0 && slot < MAX_REPLICAS) hits[slot].add(1);
  else unknown.add(1);
}
