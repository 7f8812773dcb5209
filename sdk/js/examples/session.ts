// The README's worked session (compiled by `npm test`, never run there: it needs a service on 8022).
import { writeFileSync } from "node:fs";
import { connect } from "inndx";

const s = await connect("ws://127.0.0.1:8022", "acme", { client: "chrome", timeout: "20s" });
const page = await s.goto("https://example.com/");          // GotoResult: status_code, headers,
console.log(page.status_code, page.headers.getAll("set-cookie"), page.redirects); // cookies, body
await s.fill("#q", "inndx"); await s.click("button[type=submit]");
console.log(await s.evaluate("return document.title"));
writeFileSync("shot.png", (await s.screenshot())!);            // PNG bytes (a Buffer)
await s.close();
