/**
 * The app's client of a DefectLab server (`npm run server`, docs/server.md): health check, job submission,
 * progress from the job's server-sent events (the workers' `Progress` shape, so the same progress bars draw it),
 * cancel through an AbortSignal (as a worker job's Stop button does), and the results zip unpacked.
 *
 * Plain `fetch` (browser, worker and Node alike). SSE is read from the fetch body rather than `EventSource`,
 * which cannot send the bearer token. Every failure is a `DefectLabError` saying what to do: the server is not
 * reachable, the token is wrong, or the server's own `{ code, message, fix }`.
 */
import { unzipSync } from 'fflate';
import { CancelledError, DefectLabError } from '../core/errors.ts';
import type { Progress } from '../core/progress.ts';

export interface ServerConnection {
  /** Base URL, e.g. http://127.0.0.1:8787 */
  url: string;
  /** Bearer token ('' when the server has none). */
  token: string;
}

export interface ServerHealth {
  ok: boolean;
  version: string;
  queue: { mode: string; waiting: number; running: number };
}

export interface ServerCapabilities {
  version: string;
  ort: { providers: string[]; cudaFallbackReason: string };
  gpu: { name: string; memoryMiB: number }[] | null;
  device: string;
  queue: { mode: string; waiting?: number; running?: number; maxQueue: number };
  datasets: string[];
  models: string[];
  jobKinds: string[];
  jobGenerators: string[];
}

export interface ServerJobStatus {
  id: string;
  kind: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  progress: Progress | null;
  error?: { code: string; message: string; fix: string };
  summary?: Record<string, unknown>;
  attempts: number;
}

/** A finished job's zip: `manifest.json` parsed, every other entry as bytes. */
export interface ServerJobResult {
  status: ServerJobStatus;
  manifest: Record<string, unknown>;
  files: Record<string, Uint8Array>;
}

export class ServerUnreachableError extends DefectLabError {
  constructor(url: string, why: string) {
    super(
      'ServerUnreachableError',
      `the DefectLab server at ${url} did not answer (${why})`,
      'start it (npm run server), check the URL in System → Compute, or switch Compute back to "This browser"',
    );
  }
}

export class ServerAuthError extends DefectLabError {
  constructor(url: string, missing: boolean) {
    super(
      'ServerAuthError',
      `the server at ${url} ${missing ? 'needs a token' : 'refused the token'}`,
      'paste the token the server was started with (--token / DL_TOKEN) into System → Compute',
    );
  }
}

/** The server's own error, as it sent it. */
export class ServerRequestError extends DefectLabError {
  readonly status: number;
  constructor(status: number, code: string, message: string, fix: string) {
    super(code || 'ServerRequestError', message.replace(/^\w+: /, '').replace(/ — fix: .*$/s, ''), fix);
    this.status = status;
  }
}

const TERMINAL = new Set(['done', 'failed', 'cancelled']);

export class ServerClient {
  readonly url: string;
  private token: string;

  constructor(c: ServerConnection) {
    this.url = c.url.replace(/\/+$/, '');
    this.token = c.token;
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.token) headers.set('authorization', `Bearer ${this.token}`);
    let r: Response;
    try {
      r = await fetch(this.url + path, { ...init, headers });
    } catch (e) {
      if ((e as { name?: string }).name === 'AbortError') throw e;
      throw new ServerUnreachableError(this.url, e instanceof Error ? e.message : String(e));
    }
    if (r.status === 401) throw new ServerAuthError(this.url, !this.token);
    if (!r.ok) {
      let body: { code?: string; message?: string; fix?: string } = {};
      try {
        body = (await r.json()) as typeof body;
      } catch {
        // not the server's JSON (a proxy's page): the status says enough
      }
      throw new ServerRequestError(
        r.status,
        body.code ?? `HTTP${r.status}`,
        body.message ?? `HTTP ${r.status} from ${path}`,
        body.fix ?? 'check the server URL (a proxy may be answering instead)',
      );
    }
    return r;
  }

  private async json<T>(path: string, init?: RequestInit): Promise<T> {
    return (await (await this.request(path, init)).json()) as T;
  }

  /** `/api/health` plus a capabilities call, so a wrong token shows up in the health check too. */
  async check(): Promise<{ health: ServerHealth; capabilities: ServerCapabilities }> {
    const health = await this.json<ServerHealth>('/api/health');
    const capabilities = await this.json<ServerCapabilities>('/api/capabilities');
    return { health, capabilities };
  }

  submit(spec: Record<string, unknown>): Promise<ServerJobStatus> {
    return this.json('/api/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(spec),
    });
  }

  status(id: string): Promise<ServerJobStatus> {
    return this.json(`/api/jobs/${encodeURIComponent(id)}`);
  }

  cancel(id: string): Promise<ServerJobStatus> {
    return this.json(`/api/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }

  /** Follows a job's events until it ends; returns its final status. */
  async follow(
    id: string,
    onProgress?: (p: Progress) => void,
    signal?: AbortSignal,
  ): Promise<ServerJobStatus> {
    const r = await this.request(`/api/jobs/${encodeURIComponent(id)}/events`, { signal });
    if (!r.body) return this.status(id);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let last: ServerJobStatus | null = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let at: number;
      while ((at = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, at);
        buf = buf.slice(at + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!event || data === undefined) continue;
        if (event === 'progress') onProgress?.(JSON.parse(data) as Progress);
        if (event === 'state') last = JSON.parse(data) as ServerJobStatus;
      }
      if (last && TERMINAL.has(last.state)) break;
    }
    await reader.cancel().catch(() => undefined);
    return last && TERMINAL.has(last.state) ? last : this.status(id);
  }

  async results(id: string): Promise<Omit<ServerJobResult, 'status'>> {
    const zip = new Uint8Array(
      await (await this.request(`/api/jobs/${encodeURIComponent(id)}/results`)).arrayBuffer(),
    );
    const files = unzipSync(zip);
    const manifest = JSON.parse(new TextDecoder().decode(files['manifest.json'])) as Record<string, unknown>;
    delete files['manifest.json'];
    return { manifest, files };
  }

  /**
   * Submits a job, reports its progress, and returns its unpacked results. Aborting `signal` cancels the job on
   * the server (reaching the running cell) and rejects with `CancelledError`; a failed job rejects with the
   * server's error.
   */
  async run(
    spec: Record<string, unknown>,
    o: { onProgress?: (p: Progress) => void; signal?: AbortSignal } = {},
  ): Promise<ServerJobResult> {
    if (o.signal?.aborted) throw new CancelledError('the server job', 'it was not submitted');
    const job = await this.submit(spec);
    const stream = new AbortController();
    const onAbort = () => {
      void this.cancel(job.id).catch(() => undefined);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      // The stream stays open through a cancel: the server ends it with the `cancelled` state.
      const status = await this.follow(job.id, o.onProgress, stream.signal);
      if (status.state === 'cancelled') throw new CancelledError('the server job');
      if (status.state !== 'done')
        throw new ServerRequestError(
          422,
          status.error?.code ?? 'JobFailedError',
          status.error?.message ?? `job ${job.id} ${status.state}`,
          status.error?.fix ?? 'check the job settings and submit it again',
        );
      return { status, ...(await this.results(job.id)) };
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      stream.abort();
    }
  }
}
