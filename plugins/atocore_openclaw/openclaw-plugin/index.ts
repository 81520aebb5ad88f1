/**
 * AtoCore for OpenClaw (native plugin entry).
 *
 * - before_prompt_build: asks the AtoCore server (POST /context/build) for a short context
 *   supplement for the prompt and returns it as `prependContext`, wrapped in
 *   <atocore-context>...</atocore-context> so capture can recognise and skip it.
 * - agent_end: posts the finished turn (last user prompt + assistant text) to
 *   POST /interactions; the server redacts secrets before committing and stores a turn once.
 *
 * Both fail open: each request has a time budget (config timeoutMs / captureTimeoutMs) and
 * every error is logged and swallowed. The host's own hook timeouts are set in
 * plugins.entries.atocore.hooks.timeouts (see README.md). Non-bundled plugins need
 * plugins.entries.atocore.hooks.allowConversationAccess = true for these hooks.
 *
 * The logic lives in atocore-core.mjs (plain JS, tested by AtoCore's test suite with Node).
 */
import { agentEnd, beforePromptBuild, resolveConfig } from "./atocore-core.mjs";

type HookHandler = (event: any, ctx: any) => unknown;

interface PluginApi {
  pluginConfig?: Record<string, unknown>;
  logger?: { warn?: (msg: string) => void; info?: (msg: string) => void };
  on(name: string, handler: HookHandler, opts?: { priority?: number; timeoutMs?: number }): void;
}

const plugin = {
  id: "atocore",
  name: "AtoCore",
  description: "Project context from a self-hosted AtoCore server; finished turns captured back.",
  kind: "memory" as const,
  register(api: PluginApi): void {
    const cfg = resolveConfig((api.pluginConfig ?? {}) as Record<string, unknown>);
    const log = (msg: string): void => api.logger?.warn?.(msg);
    api.on("before_prompt_build", (event, ctx) => beforePromptBuild(cfg, event, ctx, log),
      { timeoutMs: cfg.timeoutMs + 250 });
    api.on("agent_end", (event, ctx) => agentEnd(cfg, event, ctx, log),
      { timeoutMs: cfg.captureTimeoutMs + 250 });
  },
};

export default plugin;
