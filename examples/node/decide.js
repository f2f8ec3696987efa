#!/usr/bin/env node
// Sends a DecideRequest file (proto3 JSON, as in rules/examples/) to a running `nba serve`
// from Node, and prints the recommendations.
//
//   npm ci --prefix examples/node
//   node examples/node/decide.js [--address 127.0.0.1:50051] rules/examples/web_prospect_homepage.json
//
// Why the request is converted before it is sent: @grpc/proto-loader serializes with
// protobufjs's fromObject, which does not read proto3 JSON for the well-known types.
//   - google.protobuf.Struct (the profile): a plain object such as {"age": 31} has no
//     `fields` key, so it silently becomes an EMPTY Struct: the server then decides for
//     a customer it knows nothing about (an anonymous visitor), without a word. It must
//     be sent as {fields: {age: {numberValue: 31}}}.
//   - google.protobuf.Timestamp (asOf, interactions[].at): an RFC 3339 string throws
//     "object expected"; it must be sent as {seconds, nanos}.
//   - fromObject also drops keys it does not know (a snake_case `customer_id`, a typo),
//     so this script refuses them instead, as the Python and Go JSON parsers do.
// Checked with @grpc/proto-loader 0.8.1 (protobufjs 7.6.6); tests/test_node_client.py
// compares what this script gets with what the Python client gets for the same file.

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTOS = path.resolve(__dirname, '..', '..', 'protos');
const PROTO_FILE = path.join(PROTOS, 'nba', 'v1', 'decisioning.proto');

// keepCase false: message fields are camelCase, the names proto3 JSON uses.
const LOADER_OPTIONS = {
  keepCase: false,
  enums: String,
  longs: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTOS],
};

/** A JSON value as a google.protobuf.Value message object. */
function toValue(value, where) {
  if (value === null) return { nullValue: 'NULL_VALUE' };
  if (Array.isArray(value)) {
    return { listValue: { values: value.map((v, i) => toValue(v, `${where}[${i}]`)) } };
  }
  switch (typeof value) {
    case 'number':
      return { numberValue: value };
    case 'string':
      return { stringValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'object':
      return { structValue: toStruct(value, where) };
    default:
      throw new Error(`${where}: ${typeof value} is not a JSON value`);
  }
}

/** A plain JSON object as a google.protobuf.Struct message object. */
function toStruct(object, where) {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) {
    throw new Error(`${where}: expected a JSON object`);
  }
  const fields = {};
  for (const [key, value] of Object.entries(object)) {
    fields[key] = toValue(value, `${where}.${key}`);
  }
  return { fields };
}

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** An RFC 3339 string ("2026-11-20T10:00:00Z") as a google.protobuf.Timestamp object. */
function toTimestamp(text, where) {
  const match = typeof text === 'string' ? RFC3339.exec(text) : null;
  const millis = match ? Date.parse(`${match[1]}${match[3]}`) : NaN;
  if (Number.isNaN(millis)) {
    throw new Error(`${where}: ${JSON.stringify(text)} is not an RFC 3339 time, e.g. 2026-11-20T10:00:00Z`);
  }
  // Date keeps milliseconds only: take the seconds from it and the nanos from the text.
  const nanos = Number((match[2] || '').padEnd(9, '0'));
  return { seconds: String(millis / 1000), nanos };
}

/** Fail on keys the message does not have: fromObject would drop them without a word. */
function checkKeys(object, messageType, where) {
  const known = new Set(messageType.type.field.map((f) => f.name));
  for (const key of Object.keys(object)) {
    if (!known.has(key)) {
      const hint = key.includes('_') ? ' (proto3 JSON names are camelCase)' : '';
      throw new Error(`${where}${key}: no such field in ${messageType.type.name}${hint}`);
    }
  }
}

/** A DecideRequest in proto3 JSON as the object proto-loader serializes correctly. */
function decideRequestFromJson(json, definition) {
  checkKeys(json, definition['nba.v1.DecideRequest'], '');
  const request = { ...json };
  if ('touchpoint' in json) checkKeys(json.touchpoint, definition['nba.v1.Touchpoint'], 'touchpoint.');
  if ('profile' in json) request.profile = toStruct(json.profile, 'profile');
  if ('asOf' in json) request.asOf = toTimestamp(json.asOf, 'asOf');
  if ('interactions' in json) {
    request.interactions = json.interactions.map((item, i) => {
      checkKeys(item, definition['nba.v1.Interaction'], `interactions[${i}].`);
      return 'at' in item ? { ...item, at: toTimestamp(item.at, `interactions[${i}].at`) } : item;
    });
  }
  return request;
}

function parseArgs(argv) {
  const args = { address: '127.0.0.1:50051', file: null };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--address') args.address = argv[++i];
    else if (argv[i].startsWith('--address=')) args.address = argv[i].slice('--address='.length);
    else if (!argv[i].startsWith('--') && args.file === null) args.file = argv[i];
    else throw new Error(`unexpected argument ${argv[i]}`);
  }
  if (!args.file || !args.address) {
    throw new Error('usage: node decide.js [--address HOST:PORT] REQUEST.json');
  }
  return args;
}

function printDecision(response) {
  console.log(`decision ${response.decisionId} | rules ${response.rulesetVersion}`);
  for (const rec of response.recommendations || []) {
    const treatment = rec.treatment || {};
    const headline = treatment.headline || treatment.script || '';
    console.log(`${rec.rank}. ${rec.actionId} on ${rec.channel} (score ${rec.score}): ${headline}`);
  }
  if (!(response.recommendations || []).length) console.log('(nothing recommended)');
}

function main() {
  let args;
  let request;
  const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
  try {
    args = parseArgs(process.argv.slice(2));
    const json = JSON.parse(fs.readFileSync(args.file, 'utf8'));
    request = decideRequestFromJson(json, definition);
  } catch (err) {
    console.error(`${args ? args.file : 'decide.js'}: ${err.message}`);
    process.exit(2);
  }
  const { DecisionService } = grpc.loadPackageDefinition(definition).nba.v1;
  const client = new DecisionService(args.address, grpc.credentials.createInsecure());
  const deadline = new Date(Date.now() + 10000);
  client.Decide(request, { deadline }, (err, response) => {
    client.close();
    if (err) {
      console.error(`${grpc.status[err.code]}: ${err.details}`);
      process.exit(1);
    }
    printDecision(response);
  });
}

module.exports = { toStruct, toValue, toTimestamp, decideRequestFromJson };

if (require.main === module) main();
