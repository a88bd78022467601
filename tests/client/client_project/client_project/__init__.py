"""The test project of the browser client: a page that loads channels.js, and consumers."""
