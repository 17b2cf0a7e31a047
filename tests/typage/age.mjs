// typage (npm age-encryption 0.3.1) as a tiny age CLI for tests/it/interop.rs:
//   node age.mjs encrypt RECIPIENT      < plaintext  > age file (binary)
//   node age.mjs decrypt IDENTITY_FILE  < age file   > plaintext
//   node age.mjs keygen                 > identity file (hybrid post-quantum)
import { readFileSync } from "node:fs";
import { Encrypter, Decrypter, generateHybridIdentity, identityToRecipient } from "age-encryption";

const [mode, arg] = process.argv.slice(2);
const stdin = () => new Uint8Array(readFileSync(0));
const out = (bytes) => process.stdout.write(Buffer.from(bytes));

if (mode === "encrypt") {
  const e = new Encrypter();
  e.addRecipient(arg);
  out(await e.encrypt(stdin()));
} else if (mode === "decrypt") {
  const d = new Decrypter();
  for (const line of readFileSync(arg, "utf8").split("\n")) {
    if (line.startsWith("AGE-SECRET-KEY-")) d.addIdentity(line.trim());
  }
  out(await d.decrypt(stdin(), "uint8array"));
} else if (mode === "keygen") {
  const id = await generateHybridIdentity();
  process.stdout.write(`# public key: ${await identityToRecipient(id)}\n${id}\n`);
} else {
  console.error("usage: age.mjs encrypt RECIPIENT | decrypt IDENTITY_FILE | keygen");
  process.exit(2);
}
