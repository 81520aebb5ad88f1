// AtoCore for OpenClaw (native plugin entry), plain ESM JavaScript: `openclaw plugins install`
// loads installed plugins' runtime JavaScript, so there is no TypeScript build step.
//
// - before_prompt_build: asks the AtoCore server (POST /context/build) for a short context
//   supplement for the person's current message and returns it as `prependContext`, wrapped in
//   <atocore-context>...</atocore-context> so capture can recognise and skip it.
// - agent_end: posts the finished turn (the user message + assistant text) to POST /interactions;
//   the server redacts secrets before committing and stores a turn once.
//
// No `kind`: AtoCore is a supplement, not OpenClaw's memory. It takes no exclusive slot, so
// OpenClaw's own memory (memory-core) stays active beside it.
//
// Both hooks fail open: each request has a time budget (config timeoutMs / captureTimeoutMs) and
// every error is logged and swallowed. The logic lives in atocore-core.mjs (tested with Node).
import { agentEnd, beforePromptBuild, resolveConfig } from "./atocore-core.mjs";

export default {
  id: "atocore",
  name: "AtoCore",
  description: "Project context from a self-hosted AtoCore server; finished turns captured back.",
  register(api) {
    const cfg = resolveConfig(api.pluginConfig ?? {});
    const log = (msg) => api.logger?.warn?.(msg);
    api.on("before_prompt_build", (event, ctx) => beforePromptBuild(cfg, event, ctx, log),
      { timeoutMs: cfg.timeoutMs + 250 });
    api.on("agent_end", (event, ctx) => agentEnd(cfg, event, ctx, log),
      { timeoutMs: cfg.captureTimeoutMs + 250 });
  },
};
