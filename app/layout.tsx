import type { ReactNode } from "react";
import "reveal.js/dist/theme/fonts/source-sans-pro/source-sans-pro.css";
import "@/components/site/site.css";

export const metadata = { title: "OSByExample", description: "Operating systems lectures in which the code examples run" };
export const viewport = { width: "device-width", initialScale: 1 };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>{children}</body>
    </html>
  );
}
