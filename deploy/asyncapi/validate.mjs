// Validate an AsyncAPI document with the reference parser (@asyncapi/parser) and the Avro schema parser.
//
// Why the npm parser: it is the reference implementation (spec JSON schemas incl. Kafka bindings, Spectral rules
// such as "operation messages must come from the operation's channel", $ref resolution). The Python validators
// miss most of that.
//
// Usage: node validate.mjs FILE [--json] [--print-input]
//   prints every diagnostic (errors and warnings; info/hints too), then a one-line summary;
//   --json        prints one JSON object instead: {file, valid, errors, warnings, others, counts}
//   --print-input prints the file as loaded by js-yaml, as JSON, and does not validate (lets tests check that
//                 the YAML writer produced exactly the intended data)
// Exit status: 0 no errors, 1 errors (or the document could not be parsed at all), 2 usage.
import { readFile } from 'node:fs/promises';
import { Parser, fromFile, DiagnosticSeverity } from '@asyncapi/parser';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';
import yaml from 'js-yaml';

const LEVELS = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };

// The parser runs a custom schema parser's validate() only for AsyncAPI 2.x documents (rule asyncapi2-schemas);
// for 3.x it converts Avro payloads without checking them, so e.g. an undefined type name passes unnoticed.
// So ask the Avro parser (avsc underneath) about every Avro payload ourselves.
async function avroDiagnostics(avro, document) {
  const messages = new Map();
  for (const m of [...document.components().messages().all(), ...document.allMessages().all()]) {
    messages.set(m.id(), m);
  }
  const out = [];
  for (const [id, message] of messages) {
    const payload = message.json().payload;
    if (!payload || !avro.getMimeTypes().includes(message.schemaFormat())) continue;
    const data = payload['x-parser-original-payload'] ?? payload.schema; // the Avro before its conversion
    const path = ['components', 'messages', id, 'payload', 'schema'];
    for (const problem of await avro.validate({ data, path })) {
      out.push({ severity: DiagnosticSeverity.Error, code: 'avro-schema', path,
        message: `Avro schema of message ${id}: ${problem.message}` });
    }
  }
  return out;
}

async function validate(file, asJson) {
  const avro = AvroSchemaParser();
  const parser = new Parser();
  parser.registerSchemaParser(avro);
  const { document, diagnostics } = await fromFile(parser, file).parse();
  if (document) diagnostics.push(...await avroDiagnostics(avro, document));

  const all = diagnostics.map((d) => ({ severity: LEVELS[d.severity], code: String(d.code),
    path: d.path.join('/'), message: d.message }));
  const errors = all.filter((d) => d.severity === 'error');
  const warnings = all.filter((d) => d.severity === 'warning');
  const others = all.filter((d) => d.severity !== 'error' && d.severity !== 'warning');
  const counts = document ? { channels: document.channels().length, operations: document.operations().length,
    messages: document.components().messages().length, servers: document.servers().length } : null;
  const valid = errors.length === 0 && Boolean(document);

  if (asJson) {
    console.log(JSON.stringify({ file, valid, errors, warnings, others, counts }, null, 2));
  } else {
    for (const d of all) console.log(`${d.severity} ${d.code} at /${d.path}: ${d.message}`);
    console.log(`${file}: ${errors.length} error(s), ${warnings.length} warning(s)` + (counts
      ? `; ${counts.channels} channels, ${counts.operations} operations, ${counts.messages} messages` : ''));
  }
  return valid;
}

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--'));
const flags = args.filter((a) => a.startsWith('--'));
// process.exitCode, never process.exit(): exit() cuts off output still queued for a pipe (at 64 KiB).
if (!file || flags.some((f) => !['--json', '--print-input'].includes(f))) {
  console.error('usage: node validate.mjs FILE [--json] [--print-input]');
  process.exitCode = 2;
} else if (flags.includes('--print-input')) {
  process.stdout.write(JSON.stringify(yaml.load(await readFile(file, 'utf8'))) + '\n');
} else {
  process.exitCode = (await validate(file, flags.includes('--json'))) ? 0 : 1;
}
