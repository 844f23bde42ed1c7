import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Relative asset paths: the same build is served by local mode at `/` and from any
// prefix of a static host (S3 behind CloudFront).
export default defineConfig({
  base: './',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
  server: {
    // `npm run dev`: the API of a local `orchestrator serve` on :8080.
    proxy: Object.fromEntries(
      ['/catalog', '/requests', '/resources', '/audit', '/sandbox', '/config.json', '/openapi.json'].map((p) => [
        p,
        'http://127.0.0.1:8080',
      ]),
    ),
  },
});
