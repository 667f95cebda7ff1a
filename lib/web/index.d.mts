// Types of lib/web/index.mjs for importers that name the .mjs file (the dashboard).
export * from './index.js'
