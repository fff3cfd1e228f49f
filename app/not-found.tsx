export default function NotFound() {
  return (
    <main className="site not-found">
      <p className="crumbs">
        <a href="/">← All lectures</a>
      </p>
      <h1>Not found</h1>
      <p>There is no lecture at this address. The list of lectures is on the <a href="/">start page</a>.</p>
    </main>
  );
}
