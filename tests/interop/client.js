// A client of ktrdrd in another language: Node with @grpc/grpc-js + @grpc/proto-loader.
// Usage: node client.js <grpc.sock path> <operation name>
// Prints one JSON line per step: {"health": ...}, {"info": ...}, then {"watch": [...messages]}.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
const LOADER_OPTIONS = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true };

// grpc.health.v1 is not part of protos/: describe the two messages and the Check method here.
const HEALTH_JSON = {
  nested: {
    grpc: { nested: { health: { nested: { v1: { nested: {
      HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
      HealthCheckResponse: {
        fields: { status: { type: 'ServingStatus', id: 1 } },
        nested: { ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } } },
      },
      Health: { methods: { Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' } } },
    } } } } } },
  },
};

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 10000 }, (err, reply) => (err ? reject(err) : resolve(reply)));
  });
}

function collect(stream) {
  return new Promise((resolve, reject) => {
    const items = [];
    stream.on('data', (item) => items.push(item));
    stream.on('error', reject);
    stream.on('end', () => resolve(items));
  });
}

async function main() {
  const [socketPath, operation] = process.argv.slice(2);
  const target = `unix:${socketPath}`;
  const credentials = grpc.credentials.createInsecure();

  const health = grpc.loadPackageDefinition(protoLoader.fromJSON(HEALTH_JSON, LOADER_OPTIONS)).grpc.health.v1;
  const definition = protoLoader.loadSync(
    ['ktrdr/daemon/v1/system.proto', 'ktrdr/daemon/v1/operations.proto'],
    { ...LOADER_OPTIONS, includeDirs: [PROTOS] },
  );
  const daemon = grpc.loadPackageDefinition(definition).ktrdr.daemon.v1;

  const healthClient = new health.Health(target, credentials);
  const checked = await unary(healthClient, 'Check', { service: '' });
  console.log(JSON.stringify({ health: checked.status }));

  const system = new daemon.SystemService(target, credentials);
  console.log(JSON.stringify({ info: await unary(system, 'GetInfo', {}) }));

  const ops = new daemon.OperationsService(target, credentials);
  const messages = await collect(ops.WatchOperation({ name: operation, afterSeq: '0' }));
  console.log(JSON.stringify({ watch: messages }));

  for (const client of [healthClient, system, ops]) client.close();
}

main().catch((err) => {
  console.error(`interop client failed: ${err.code} ${err.details || err.message}`);
  process.exit(1);
});
