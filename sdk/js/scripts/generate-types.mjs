// Generates src/generated/frames.ts from the repository's JSON Schemas (../../schemas): the one
// source of truth for frame shapes. Every schema file becomes one named type (goto.request.json ->
// GotoRequest, middleware/headers.json -> HeadersMiddleware, error.json -> ErrorFrame), and every
// entry of a file's $defs keeps its own name (Cookie, Redirect, Middleware...). The files' $refs
// are rewritten to point into one combined document, so nothing is fetched and no type is
// declared twice. Run by `npm run build` (and so by `npm test`); the output is not committed.
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";

const here = dirname(fileURLToPath(import.meta.url));
const schemasDir = join(here, "..", "..", "..", "schemas");
const outFile = join(here, "..", "src", "generated", "frames.ts");

function pascal(words) {
  return words.map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join("");
}

// The type name of a whole schema file, from its path below schemas/.
function fileTypeName(path) {
  const parts = path.replace(/\.json$/, "").split("/");
  if (parts[0] === "middleware") return pascal(parts[1].split("_")) + "Middleware";
  if (parts[0] === "error") return "ErrorFrame";
  return pascal(parts[0].split(/[._]/));
}

function schemaFiles(dir, prefix = "") {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = prefix + entry.name;
    if (entry.isDirectory() && entry.name !== "config") found.push(...schemaFiles(join(dir, entry.name), path + "/"));
    else if (entry.isFile() && entry.name.endsWith(".json")) found.push(path);
  }
  return found.sort();
}

const documents = new Map(); // $id -> { path, schema }
for (const path of schemaFiles(schemasDir)) {
  const schema = JSON.parse(readFileSync(join(schemasDir, path), "utf8"));
  if (typeof schema.$id !== "string") throw new Error(`${path} has no $id`);
  documents.set(schema.$id, { path, schema });
}

const combined = {}; // type name -> schema
const owner = new Map(); // type name -> where it came from (name clashes are an error)

function claim(name, where) {
  if (owner.has(name) && owner.get(name) !== where) {
    throw new Error(`type name ${name} is taken by ${owner.get(name)} and ${where}`);
  }
  owner.set(name, where);
  return name;
}

// The combined type name a $ref (relative to the document `baseId`) points to.
function target(ref, baseId) {
  const url = new URL(ref, baseId);
  const pointer = decodeURIComponent(url.hash.replace(/^#/, ""));
  url.hash = "";
  const doc = documents.get(url.href);
  if (!doc) throw new Error(`$ref ${ref} (from ${baseId}) names no schema file`);
  if (pointer === "") return claim(fileTypeName(doc.path), doc.path);
  const match = /^\/\$defs\/([A-Za-z0-9_]+)$/.exec(pointer);
  if (!match) throw new Error(`$ref ${ref}: only whole files and $defs entries are supported`);
  return claim(match[1], `${doc.path}#${pointer}`);
}

// Keywords that only say which properties must be present (required, not, and combinations of
// them): TypeScript cannot say "one of these two", so such a oneOf/anyOf/not is left to the server.
function presenceOnly(node) {
  if (node === null || typeof node !== "object" || Array.isArray(node)) return false;
  return Object.entries(node).every(([key, value]) =>
    key === "required" || (["not"].includes(key) && presenceOnly(value)) ||
    (["anyOf", "oneOf", "allOf"].includes(key) && value.every(presenceOnly)));
}

// allOf: [{if: {properties: {type: {const: X}}}, then: {$ref: R}}, ...]: the schemas' way of
// writing a union tagged on `type`; the refs it names, or null when `allOf` is anything else.
function taggedUnion(allOf) {
  const refs = allOf.map((branch) => {
    const tag = branch?.if?.properties?.type?.const;
    return typeof tag === "string" && typeof branch?.then?.$ref === "string" ? branch.then.$ref : null;
  });
  return refs.every((ref) => ref !== null) ? refs : null;
}

// A copy of `node` for TypeScript: every $ref rewritten into the combined document (its sibling
// keywords dropped: defaults and bounds are the server's business, and each sibling would make a
// new type), 2020-12 prefixItems as a tuple, tagged unions as unions, presence rules dropped
// (a oneOf/anyOf of them, and an allOf's branch that is only one).
function rewrite(node, baseId) {
  if (Array.isArray(node)) return node.map((item) => rewrite(item, baseId));
  if (node === null || typeof node !== "object") return node;
  if (typeof node.$ref === "string") return { $ref: `#/$defs/${target(node.$ref, baseId)}` };
  const copy = {};
  for (const [key, value] of Object.entries(node)) {
    if (["$defs", "$id", "$schema", "not", "if", "then", "else"].includes(key)) continue;
    if ((key === "oneOf" || key === "anyOf") && value.every(presenceOnly)) continue;
    if (key === "prefixItems") {
      copy.items = rewrite(value, baseId);
      copy.additionalItems = false;
    } else if (key === "allOf" && value.some(presenceOnly)) {  // StateCookie: a Cookie that must name its domain
      const kept = value.filter((branch) => !presenceOnly(branch));
      if (kept.length > 0) copy.allOf = rewrite(kept, baseId);
    } else if (key === "allOf" && taggedUnion(value)) {
      delete copy.properties;
      delete copy.required;
      copy.anyOf = taggedUnion(value).map((ref) => ({ $ref: `#/$defs/${target(ref, baseId)}` }));
    } else if (key === "properties" && copy.anyOf) {
      continue;
    } else if (key === "required" && copy.anyOf) {
      continue;
    } else {
      copy[key] = rewrite(value, baseId);
    }
  }
  return copy;
}

for (const [id, { path, schema }] of documents) {
  const { $defs, $id, $schema, title, ...own } = schema;
  if (Object.keys(own).length > 0) {  // definitions.json is only its $defs
    const name = claim(fileTypeName(path), path);
    combined[name] = { ...rewrite(own, id), title: name };
  }
  for (const [defName, def] of Object.entries(schema.$defs ?? {})) {
    claim(defName, `${path}#/$defs/${defName}`);
    combined[defName] = { ...rewrite(def, id), title: defName };
  }
}

const root = { title: "InndxSchemas", type: "object", additionalProperties: false, $defs: combined };
const banner = [
  "/* eslint-disable */",
  "/**",
  " * Generated by scripts/generate-types.mjs from the JSON Schemas in schemas/",
  ` * (${Array.from(documents.values(), (d) => d.path).join(", ")}). Do not edit: change the schemas.`,
  " */",
].join("\n");
let source = await compile(root, "InndxSchemas", {
  bannerComment: banner,
  unreachableDefinitions: true,
  additionalProperties: false,
  strictIndexSignatures: true,
  unknownAny: true,
  maxItems: -1,
  format: true,
  cwd: schemasDir,
  $refOptions: { resolve: { file: false, http: false } },
});
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, source);
console.log(`generate-types: ${relative(process.cwd(), outFile)} (${Object.keys(combined).length} types)`);
