/** What the tests share: the one timeout factor, and the live service the e2e wrapper started. */

/** Milliseconds times INNDX_TEST_TIMEOUT_FACTOR (default 1), as every timeout of the Python suite. */
export function scaled(ms: number): number {
  return ms * Number(process.env.INNDX_TEST_TIMEOUT_FACTOR ?? "1");
}

/** A variable the e2e wrapper (tests/e2e/test_sdk_js.py) sets; its absence is a failure, never a skip. */
export function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: the live tests run from tests/e2e/test_sdk_js.py, which starts the service `
      + "and the test site and sets INNDX_SDK_* (or set them yourself)");
  }
  return value;
}
