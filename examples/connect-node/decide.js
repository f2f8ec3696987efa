// Decide over HTTP with a real Connect client: node decide.js --base-url URL REQUEST.json
//
// The client is generated from protos/ by protoc-gen-es (gen/, committed; `npm run generate`
// remakes it) and talks the Connect protocol's JSON form (useBinaryFormat: false), as a
// browser would with connect-web. The request file is the proto3 JSON of a DecideRequest,
// read with fromJson, so Struct (the profile) and Timestamps arrive as they are written.
// Prints one line per recommendation; on an error, the Connect code and message, exit 1.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { fromJson } from "@bufbuild/protobuf";
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DecideRequestSchema, DecisionService } from "./gen/nba/v1/decisioning_pb.js";

const { values, positionals } = parseArgs({
  options: {
    "base-url": { type: "string", default: "http://127.0.0.1:8080" },
    "http-version": { type: "string", default: "1.1" },
    "timeout-ms": { type: "string", default: "5000" },
  },
  allowPositionals: true,
});
if (positionals.length !== 1) {
  console.error("usage: node decide.js [--base-url URL] [--http-version 1.1|2] REQUEST.json");
  process.exit(2);
}

const transport = createConnectTransport({
  baseUrl: values["base-url"],
  httpVersion: values["http-version"],
  useBinaryFormat: false,
});
const client = createClient(DecisionService, transport);
const request = fromJson(DecideRequestSchema, JSON.parse(readFileSync(positionals[0], "utf8")));

try {
  const response = await client.decide(request, { timeoutMs: Number(values["timeout-ms"]) });
  console.log(`rule set ${response.rulesetVersion}, decision ${response.decisionId}`);
  for (const r of response.recommendations) {
    const headline = r.treatment?.headline || r.treatment?.script || "";
    console.log(`${r.rank}. ${r.actionId} on ${r.channel} (score ${r.score}): ${headline}`);
  }
} catch (err) {
  const error = ConnectError.from(err);
  console.error(`${Code[error.code]}: ${error.rawMessage}`);
  process.exit(1);
}
