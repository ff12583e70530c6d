/** @module drizzle-kit settings: schema source and the committed migrations folder. */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./server/storage/schema.ts",
  out: "./migrations",
});
