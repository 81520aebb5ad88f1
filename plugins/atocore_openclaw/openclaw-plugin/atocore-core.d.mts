// Types for atocore-core.mjs (used by index.ts).
export interface AtoCoreConfig {
  url: string; token: string; timeoutMs: number; captureTimeoutMs: number; budgetChars: number;
  project: string | null; autoRecall: boolean; autoCapture: boolean;
}
type Log = (msg: string) => void;
export const TAG: string;
export const SOURCE: string;
export function resolveConfig(cfg?: Record<string, unknown>, env?: Record<string, string | undefined>): AtoCoreConfig;
export function postJson(cfg: AtoCoreConfig, path: string, body: unknown, timeoutMs: number, log?: Log): Promise<any | null>;
export function textOf(content: unknown): string;
export function stripInjected(text: string): string;
export function lastTurn(messages: unknown): { prompt: string; response: string; user: any } | null;
export function beforePromptBuild(cfg: AtoCoreConfig, event: any, ctx: any, log?: Log): Promise<{ prependContext: string } | undefined>;
export function agentEnd(cfg: AtoCoreConfig, event: any, ctx: any, log?: Log): Promise<any | null>;
