'use strict'
// The napi-rs addon (built by `npm run build` into bindings-node/native/).
module.exports = require('../bindings-node/native/index.js')
