// The reload the JWT verifier and signer share: one read at a time
// (concurrent callers wait for the one running), when a read was last tried
// and last succeeded, and the error of the last failure. What is read and
// what is kept from it is the caller's.

export class Reloader {
  /** When the last reload started (ms, by now). */
  lastTry = 0;
  /** When the last successful reload ended (ms, by now). */
  loadedAt = 0;
  /** The error of the last reload; undefined once one succeeds. */
  lastError?: unknown;
  #inflight?: Promise<void>;
  readonly #now: () => number;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** The reload running now, if any. */
  get inflight(): Promise<void> | undefined {
    return this.#inflight;
  }

  /** Runs load unless a reload is running, and returns the running one. A failure is recorded and rethrown. */
  run(load: () => Promise<void>): Promise<void> {
    this.#inflight ??= (async () => {
      this.lastTry = this.#now();
      try {
        await load();
        this.loadedAt = this.#now();
        this.lastError = undefined;
      } catch (e) {
        this.lastError = e;
        throw e;
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }
}
