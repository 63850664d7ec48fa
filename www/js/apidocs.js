// /api/docs: renders /api/openapi.json as a list of operations, without third-party code.
// Built with DOM calls only (no innerHTML), so the page's strict CSP holds.

const METHODS = ["get", "put", "post", "patch", "delete"];

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function refName(node) {
  return node && node.$ref ? node.$ref.split("/").pop() : null;
}

function schemaLabel(schema) {
  if (!schema) return "";
  const name = refName(schema);
  if (name) return name;
  if (schema.type === "array") return `[${schemaLabel(schema.items)}]`;
  if (schema.type === "object" && schema.properties) return `{${Object.keys(schema.properties).join(", ")}}`;
  return Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "";
}

function bodyLabel(content) {
  if (!content) return "";
  return Object.entries(content).map(([type, media]) => `${type} ${schemaLabel(media.schema)}`).join("; ");
}

function operation(doc, path, method, op) {
  const section = el("section", undefined, "operation");
  const head = el("h3");
  head.append(el("span", method.toUpperCase(), `method ${method}`), el("code", path));
  section.append(head, el("p", op.summary || ""));
  if (op.description) section.append(el("p", op.description, "description"));
  const open = Array.isArray(op.security) && op.security.length === 0;
  section.append(el("p", open ? "No token." : "Needs Authorization: Bearer <token>.", "auth"));
  const params = (doc.paths[path].parameters || []).concat(op.parameters || [])
    .map((p) => (p.$ref ? doc.components.parameters[refName(p)] : p));
  if (params.length) {
    const list = el("ul", undefined, "params");
    for (const p of params) list.append(el("li", `${p.name} (${p.in}${p.required ? ", required" : ""}): ${p.description || ""}`));
    section.append(list);
  }
  if (op.requestBody) section.append(el("p", `Body: ${bodyLabel(op.requestBody.content)}`, "body"));
  const table = el("table", undefined, "responses");
  for (const [status, given] of Object.entries(op.responses)) {
    const response = given.$ref ? doc.components.responses[refName(given)] : given;
    const row = el("tr");
    row.append(el("td", status), el("td", response.description || ""), el("td", bodyLabel(response.content)));
    table.append(row);
  }
  section.append(table);
  return section;
}

function schemas(doc) {
  const section = el("section", undefined, "schemas");
  section.append(el("h2", "Schemas"));
  for (const [name, schema] of Object.entries(doc.components.schemas)) {
    const block = el("div", undefined, "schema");
    block.append(el("h3", name), el("pre", JSON.stringify(schema, null, 2)));
    section.append(block);
  }
  return section;
}

async function main() {
  const root = document.getElementById("api-docs");
  try {
    const response = await fetch("/api/openapi.json");
    const doc = await response.json();
    root.replaceChildren(el("h1", doc.info.title), el("p", doc.info.description));
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS.filter((m) => item[m])) root.append(operation(doc, path, method, item[m]));
    }
    root.append(schemas(doc));
  } catch (error) {
    root.replaceChildren(el("p", `Could not load /api/openapi.json: ${error}`, "error"));
  }
}

main();
